#include "trace/trace-hw_split.h"
