#include "trace/trace-hw_ras.h"
