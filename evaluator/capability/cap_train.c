/* cap_train.c - the portable build of the training loop (cap_train_impl.h);
 * exported names end in _generic, see cap_dispatch.c. */
#include "evaluator/capability/cap_train_impl.h"
