// libjpeg-turbo's TurboJPEG API: decode and encode of the CelebA JPEGs.
#include <stddef.h>
#include <turbojpeg.h>
