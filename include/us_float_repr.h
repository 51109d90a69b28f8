/*
 * us_float_repr.h - a double as Python's repr() writes it, which is how
 * json.dumps (FastAPI's answers, the platform's stored metadata) writes a
 * float: the fewest significant digits that read back as the same double,
 * fixed notation for decimal exponents -4..15 ("0.0001", "1e-05",
 * "1000000000000000.0", "1e+16"), ".0" after an integral value, and an
 * exponent of at least two digits with its sign. Pure.
 */
#ifndef US_FLOAT_REPR_H
#define US_FLOAT_REPR_H

#include <stddef.h>

/* "-" + 17 digits + "." + up to 16 padding zeros, or "e-324": 40 is ample */
#define US_FLOAT_REPR_MAX 40

/* Writes repr(d) and its NUL into out; returns its length, or 0 (out "")
 * when d is NaN or infinite (JSON has no such number). */
size_t us_float_repr(double d, char out[US_FLOAT_REPR_MAX]);

#endif
