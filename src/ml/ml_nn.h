/*
 * ml_nn.h - internals shared by the trainers (k-means and the MLP; global
 * row ids also the linear models' mini-batches) and their tests: the
 * fixed-chunk parallel sum that makes
 * results independent of the thread count, global row ids, and entry
 * points that expose one piece of a trainer (initial centres, the MLP's
 * full-batch loss and gradient) so that tests can check it against a
 * reference computation.
 */
#ifndef PT_ML_NN_H
#define PT_ML_NN_H

#include "ml/ml_internal.h"

/* Work on one chunk: adds its contribution into `out` (m doubles, zeroed
 * before the call; NULL when m == 0). `slot` is in [0, nslots) and differs
 * between chunks that may run at the same time, so it can index a
 * workspace the caller owns. */
typedef pt_status (*pt__chunk_fn)(void *arg, int64_t chunk, int slot, double *out,
                                  pt_error *err);

/* Runs fn for chunks 0..nchunks-1 on `pool` (NULL: in the calling thread),
 * at most nslots at a time, and adds their outputs into acc (m doubles, not
 * cleared here) strictly in chunk order: the floating-point result depends
 * on the chunking only, never on the number of threads. `scratch` holds
 * nslots * m doubles for the chunk outputs, or is NULL to have them
 * allocated per call (a trainer that calls this every step passes its own).
 * Returns the first failure of a chunk, or PT_ENOMEM. */
pt_status pt__ml_chunk_sum(pt_pool *pool, int64_t nchunks, int64_t m, int nslots,
                           pt__chunk_fn fn, void *arg, double *acc, double *scratch,
                           pt_error *err);

/* The global row ids of this rank's rows (d->row_id when set, else the
 * position in rank order, which needs an allgather of row counts), and the
 * global row count. *gid is pt_malloc'ed. Collective. */
pt_status pt__ml_global_ids(pt_comm *comm, const pt_dataset *d, int64_t **gid,
                            int64_t *nglobal, pt_error *err);

/* A uniform draw in (0, 1) fixed by (seed, stream, global row id): the
 * per-row randomness of the trainers, the same whatever ranks or threads
 * hold the row. */
double pt__ml_row_uniform(uint64_t seed, uint64_t stream, int64_t gid);

/* The initial centres (k * nfeatures, row-major) that pt_train picks for
 * o (k-means|| or k-means++), before any Lloyd iteration. Collective. */
pt_status pt__kmeans_init(const pt_train_opts *o, const pt_dataset *d, double *centers,
                          pt_error *err);

/* MLP: the objective over every rank's rows of d, mean softmax
 * cross-entropy + reg/2 * sum of squared weights (biases not penalised),
 * and its gradient (shape->nparams values), at `params` laid out as in
 * `shape` (a model whose sizes, nlayers and activation are set; its own
 * params are not used). No input standardisation. Collective. */
pt_status pt__mlp_loss_grad(const pt_model *shape, pt_ctx *ctx, pt_comm *comm,
                            const pt_dataset *d, double reg, const double *params,
                            double *loss, double *grad, pt_error *err);

#endif
