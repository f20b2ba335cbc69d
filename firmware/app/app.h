/* The application on top of the interpreter (the source's ai_inference_engine flow): quantise the float
 * features, invoke, read the int8 scores, dequantise, report class + confidence + raw bytes + counts.
 * It runs unchanged on the board (board/) and on the host (host/): the platform gives two hooks. */
#ifndef APP_H
#define APP_H
#include <stddef.h>
#include <stdint.h>

#include "../runtime/interpreter.h"

typedef struct {
  const uint8_t *model;
  uint32_t model_size;
  const float *inputs; /* num_inputs x input elements, float features before quantisation */
  const int8_t *inputs_q; /* or, when not NULL, inputs already quantised (int8, copied as they are) */
  int num_inputs;
  const op_resolver_t *resolver;
  const packed_weights_t *packed;
  int num_packed;
  uint8_t *arena;
  size_t arena_size;
  void (*write)(const char *text); /* USART1 on the board, stdout on the host */
  uint32_t (*ticks)(void);         /* TIM2 counter (emulated instructions under -icount shift=0) */
} app_config_t;

/* Returns 0 when every inference ran, or the kws_status_t that stopped it (already printed). */
int app_run(const app_config_t *cfg);

#endif
