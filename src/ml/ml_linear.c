/* ml_linear.c - placeholder until the linear trainer lands. */
#include "ml/ml_internal.h"

pt_status pt__linear_train(const pt_train_opts *o, const pt_dataset *d, pt_model **m,
                           pt_error *err) {
    (void)o; (void)d; *m = NULL;
    return pt_error_set(err, PT_EUNSUPPORTED, "train: linear not implemented yet");
}
pt_status pt__linear_predict(const pt_model *m, pt_ctx *ctx, const pt_dataset *d,
                             pt_predictions *out, pt_error *err) {
    (void)m; (void)ctx; (void)d; (void)out;
    return pt_error_set(err, PT_EUNSUPPORTED, "predict: linear not implemented yet");
}
