/*
 * ml_linear.h - internals of the linear trainer that tests reach into: the
 * smooth objective itself (to check gradients against finite differences)
 * and the row count of the fixed chunks the data-parallel sums use.
 */
#ifndef PT_ML_LINEAR_H
#define PT_ML_LINEAR_H

#include "ml/ml_internal.h"

/* Rows per chunk of the data-parallel sums (4096). The partial sums of the
 * chunks are added in chunk order, so results depend on this value but not
 * on the thread count; tests lower it to get many chunks from small data. */
extern int64_t pt__linear_chunk_rows;
/* Whether CSR values may be packed as one-byte codes (see pack_values in
 * ml_linear.c); tests turn it off to check both paths give the same bits. */
extern int pt__linear_pack_values;

/* The smooth part of the training objective of the linear model described
 * by o (kind, family, regParam, elasticNetParam's L2 share, fitIntercept,
 * standardization) on d, at internal parameters x: rows*nfeatures weights
 * of the standardised (and, with an intercept, centred)
 * features, then rows intercepts. *nx_out (may be NULL) gets the parameter
 * count; when x is NULL only that is computed. f gets (1/n) sum of losses
 * + regParam*(1-elasticNet)/2 * |W|^2, g (nx values) its gradient.
 * Collective over o->comm. */
pt_status pt__linear_objective(const pt_train_opts *o, const pt_dataset *d, const double *x,
                               int64_t *nx_out, double *f, double *g, pt_error *err);

#endif
