/* us_version.h - the module's version, in one place (logs, Server token). */
#ifndef US_VERSION_H
#define US_VERSION_H

#define US_VERSION "0.9.0"

#endif
