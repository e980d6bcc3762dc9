"""Data that does not fit in memory: the two streamed engines.

    moments  one pass gathers n, the means and the centred cross-products
             (data/moments.py); the heart then trains on them, an epoch
             costing O(d²) whatever N is.
    stream   true full-batch descent over the files: every epoch reads every
             batch, sums the gradient of the loss over them in float64, and
             makes ONE step -- the seed's loop, with the data set too large
             to hold. It costs a pass per epoch, so it is for many features
             (d > 4096, where the (d + 1)² statistics grow too large) or for
             seeing it done. Past 4096 features its first pass gathers only
             each column's mean and spread (to standardize the batches), and
             the steepest curvature, which sets the learning rate, comes from
             the Lanczos method: a few dozen passes, each a Hessian-vector
             product summed over the batches (`largest_curvature`).

Both read batch after batch (data/read.py), never the whole data, and both
work across workers (engine/cluster.py): each reads its shard and the workers
combine their sums through a gather, in rank order.
"""
import numpy as np
import tensorflow as tf

from linreg.core.step import loss_and_gradients, update
from linreg.core.training import judge
from linreg.data import read
from linreg.data.moments import gathered, of_batches
from linreg.engine.driver import divergence_error


def shard_moments(source, target, features, weights, missing, shard, shards, cluster=None, batch_rows=None,
                  diagonal=False):
    """The Moments of one shard, batches merged in file order, and the rows
    dropped. diagonal: only the sums of squares, not the cross-products."""
    batches = read.batches(source, target, features, weights, missing, shard=shard, shards=shards, batch_rows=batch_rows)
    return of_batches(batches if cluster is None else cluster.lockstep(batches), len(features) + 1, diagonal)


def gather_moments(source, target, features, weights, missing, cluster, batch_rows=None, diagonal=False):
    """Every worker's shard summarized, gathered, and merged in rank order
    (data/moments.gathered)."""
    mine, dropped = shard_moments(source, target, features, weights, missing, cluster.rank, cluster.size, cluster,
                                  batch_rows, diagonal)
    (total,), dropped = gathered(cluster, [mine], dropped)
    return total, dropped


def my_batches(source, target, features, weights, missing, cluster, batch_rows=None):
    """This worker's share of the batches, checking in with the other workers as it goes."""
    return cluster.lockstep(read.batches(source, target, features, weights, missing, shard=cluster.rank,
                                           shards=cluster.size, batch_rows=batch_rows))


def standardize_batch(scaled, batch):
    """A batch's rows in the standardized coordinates training works in (float64)."""
    return scaled.transform(batch.x, batch.y, batch.w)


# Lanczos over the files: a Krylov space of this many vectors (a pass each,
# restarted as ARPACK sees fit), stopping at this relative residual. The
# rules' rates keep a margin beyond λ_max (gd diverges only above 2/λ,
# nesterov above 4/(3λ)), so an estimate a little below λ_max is safe.
# Measured on 8000 x 2100 standardized Gaussian columns, whose top
# eigenvalues crowd together (the hard case): 21 products, 0.2% low; with
# 1e-3, 51 products and 7e-6 low. With a common factor (a gap at the top),
# 11 products, exact to rounding.
CURVATURE_VECTORS, CURVATURE_RTOL = 10, 1e-2


def largest_curvature(source, target, features, weights, missing, scaled, cluster, batch_rows=None):
    """λ_max of the loss's Hessian, by the Lanczos method, one pass per product.

    With standardized (centred) columns the Hessian is block-diagonal:
    2/N·x_sᵀx_s for W and 2 for b. Its product with a vector v needs no
    (d + 1)² matrix: x_sᵀ(x_s·v) = Σ over batches of x_bᵀ(x_b·v), two
    matrix-vector products per batch, summed across the workers.

    Why not power iteration (analysis/curvature.py)? It keeps only its last
    vector, and from a start nearly orthogonal to the top eigenvector it
    creeps: on a 6-feature set it settled at the second eigenvalue, 4.16
    for 5.13, changing by less than 1e-3 a step. Lanczos keeps every vector
    it has made and takes the best estimate from all of them, so the top
    eigenvalue is found once any of them leans towards it. Every worker
    starts from the same vector and sees the same sums, so all agree.
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    def product(v):
        total = np.zeros(len(v))
        for batch in my_batches(source, target, features, weights, missing, cluster, batch_rows):
            x, _ = standardize_batch(scaled, batch)
            total += x.T @ (x @ v)
        total = cluster.gather(total).sum(axis=0) if cluster.size > 1 else total
        return 2.0 * total / scaled.rows

    d = len(features)
    operator = LinearOperator((d, d), matvec=product, dtype=np.float64)
    start = np.random.default_rng(0).standard_normal(d)
    largest = float(eigsh(operator, k=1, which="LA", v0=start, ncv=min(CURVATURE_VECTORS, d), tol=CURVATURE_RTOL,
                          return_eigenvectors=False)[0])
    return max(largest, 2.0) if scaled.train_intercept else largest


class StreamedEpochs:
    """Full-batch epochs over files: run(state, patience) is one epoch, as the driver's loop expects.

    The loss is a mean over all N rows, so its gradient is the sum over
    batches of (rows in the batch / N) times the batch's own mean gradient.
    The tape differentiates each batch; the sum is kept in float64 whatever
    the model's dtype (adding thousands of float32 batch gradients would
    lose digits); after the last batch -- and the workers' sums combined --
    comes the one `update`, where assign_sub happens.
    """

    def __init__(self, model, optimizer, source, target, features, weights, missing, scaled, cluster, tol,
                 batch_rows=None):
        self.model, self.optimizer, self.cluster = model, optimizer, cluster
        self.read = lambda: my_batches(source, target, features, weights, missing, cluster, batch_rows)
        self.scaled, self.tol = scaled, tol
        self.rows = scaled.rows

    def _standardized(self, batch):
        x, y = standardize_batch(self.scaled, batch)
        dtype = self.model.W.dtype
        return tf.constant(x, dtype), tf.constant(y, dtype)

    def gradient(self):
        """The loss and its gradient over every row of every worker, float64."""
        variables = self.model.trainable_variables
        sizes = [int(tf.size(v)) for v in variables]
        total = np.zeros(1 + sum(sizes))
        for batch in self.read():
            if len(batch.y) == 0:
                continue
            loss, gradients = loss_and_gradients(self.model, *self._standardized(batch))
            share = len(batch.y) / self.rows
            total += share * np.concatenate([[float(loss)], *(np.ravel(g.numpy()) for g in gradients)])
        total = self.cluster.gather(total).sum(axis=0) if self.cluster.size > 1 else total
        pieces = np.split(total[1:], np.cumsum(sizes)[:-1])
        gradients = [tf.constant(p.reshape(v.shape), v.dtype) for p, v in zip(pieces, variables)]
        return total[0], gradients

    def measure(self):
        loss, gradients = self.gradient()
        return loss, float(np.sqrt(sum(float(tf.reduce_sum(g * g)) for g in gradients)))

    def run(self, state, patience):
        """One epoch, judged by the loop's rules; returns its history row, as a chunk of length 1."""
        W, b = self.model.W.numpy(), self.model.b.numpy()
        loss, gradients = self.gradient()
        update(self.model, self.optimizer, gradients)
        dtype = self.model.W.dtype
        norm = float(np.sqrt(sum(float(tf.reduce_sum(tf.cast(g, tf.float64) ** 2)) for g in gradients)))
        state.write(judge(state.read(), tf.constant(loss, dtype), tf.constant(norm, dtype),
                          tf.constant(self.tol, dtype), patience))
        cast = dtype.as_numpy_dtype
        return [np.array([loss], cast), np.array([norm], cast), W[None], np.array([b], cast)], 1


def diverged(optimizer, largest=None):
    """The error for a blow-up at an epoch (engine/driver.py's, as every driver gives it)."""
    return lambda epoch: divergence_error(optimizer, epoch, largest)



def train_streamed(method, scaled, curvature, files, dtype, learning_rate, epochs, tol, compile, listeners,
                   checkpoints):
    """Descent with an epoch per pass over the files: the engine stream's
    method (engine/solve.py has the others). files: (source, target,
    features, weights, missing, cluster, batch_rows), as read the first time.
    compile is not used: every epoch runs eagerly between batches."""
    from linreg.core.model import LinearModel
    from linreg.engine import driver, solve

    source, target, features, weights, missing, cluster, batch_rows = files
    model = LinearModel(scaled.x.shape[1], dtype=dtype, intercept=scaled.train_intercept)
    smallest = curvature.smallest if scaled.cross_products else None  # None: unknown
    rule = solve.make(method, model, curvature.largest, smallest, learning_rate)
    epochs_run = StreamedEpochs(model, rule, source, target, features, weights, missing, scaled, cluster, tol,
                                batch_rows)
    patience = solve.patience_for(curvature.condition_number) if scaled.cross_products else solve.UNKNOWN_PATIENCE
    result = driver.loop(model, rule, epochs_run.run, epochs_run.measure, diverged(rule, curvature.largest), epochs,
                         "stream", listeners, checkpoints=checkpoints, patience=patience)
    if scaled.cross_products:
        result = solve.stalled_far(result, curvature.condition_number)
    return solve.Solution(model.W.numpy().astype(np.float64), float(model.b.numpy()), result, rule, method, 1,
                          largest=curvature.largest)
