#include "trace/trace-accel_route.h"
