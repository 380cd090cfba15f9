/* cap_model.c - the portable float build of the trainer's model code
 * (cap_model_impl.h); function names end in _f32. */
#include "evaluator/capability/cap_model_impl.h"
