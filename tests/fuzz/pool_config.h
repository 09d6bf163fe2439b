/* The pool's config header under a name that does not clash with rolloutd's config.h. */
#include "../../pool/config.h"
