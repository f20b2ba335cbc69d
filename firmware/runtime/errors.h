/* Every way the runtime can refuse a model, as a named code (printed on the UART by the app). The enum value
 * is also the exit status (semihosting SYS_EXIT_EXTENDED on the MCU, exit() on the host): one per kind.
 * The interpreter never crashes on bad input: it returns one of these instead. */
#ifndef ERRORS_H
#define ERRORS_H

typedef enum {
  KWS_OK = 0,
  KWS_ERR_BAD_MAGIC,         /* file identifier is not "TFL3" */
  KWS_ERR_SCHEMA_VERSION,    /* Model.version is not the schema version we read (3) */
  KWS_ERR_OUT_OF_BOUNDS,     /* an offset or a size points outside the model buffer */
  KWS_ERR_BAD_MODEL,         /* structure we cannot use: no subgraph, bad tensor index, ... */
  KWS_ERR_UNSUPPORTED_TYPE,  /* a tensor type other than int8/int32 */
  KWS_ERR_UNSUPPORTED_OP,    /* an operator the op resolver lacks */
  KWS_ERR_BAD_SHAPE,         /* shapes that do not fit the operator */
  KWS_ERR_BAD_QUANT,         /* missing or unusable quantisation parameters */
  KWS_ERR_MISALIGNED,        /* an int32 constant that is not 4-byte aligned */
  KWS_ERR_ARENA_TOO_SMALL,   /* the tensor arena cannot hold the plan (bytes needed are reported) */
  KWS_ERR_NOT_READY,         /* invoke() before a successful init */
  KWS_ERR_HARD_FAULT,        /* the MCU took a fault (board/startup.c); never returned by the interpreter */
  KWS_ERR_NO_PACKED_WEIGHTS, /* host build: `optimized` asked for without the build-time weights file */
  KWS_ERR_HOST_IO,           /* host build: bad arguments or a file it cannot read */
  KWS_ERR_COUNT
} kws_status_t;

static inline const char *kws_status_name(int s) {
  static const char *const names[KWS_ERR_COUNT] = {
      "OK",          "BAD_MAGIC", "SCHEMA_VERSION", "OUT_OF_BOUNDS",   "BAD_MODEL",  "UNSUPPORTED_TYPE",
      "UNSUPPORTED_OP", "BAD_SHAPE", "BAD_QUANT",   "MISALIGNED", "ARENA_TOO_SMALL", "NOT_READY",
      "HARD_FAULT",  "NO_PACKED_WEIGHTS", "HOST_IO"};
  return (s >= 0 && s < KWS_ERR_COUNT) ? names[s] : "UNKNOWN";
}

#endif
