/* us_uuid.h - random (version 4) UUIDs in canonical form. Pure: APR. */
#ifndef US_UUID_H
#define US_UUID_H

/* Writes a new UUID4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx") and NUL into out. */
void us_uuid4(char out[37]);

#endif
