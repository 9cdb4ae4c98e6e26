#include "trace/trace-hw_ivq.h"
