#include "trace/trace-hw_kona.h"
