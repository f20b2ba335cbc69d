/* Firmware entry: the model and the test inputs are const arrays in flash (build/gen/.../model_data.c,
 * written by tools/gen_model.py), the tensor arena is a static buffer in SRAM. */
#include "../board/board.h"
#include "app.h"

#ifndef KWS_ARENA_SIZE
#define KWS_ARENA_SIZE (48 * 1024) /* bytes; the app prints how many the plan used */
#endif

extern const uint8_t kws_model[];
extern const uint32_t kws_model_len;
/* inputs.c defines one of the two (tools/gen_model.py: float features; tools/gen_inputs.py: float or
 * int8): weak, so the other one's address is NULL */
extern const float kws_inputs[] __attribute__((weak));
extern const int8_t kws_inputs_q[] __attribute__((weak));
extern const int kws_num_inputs;
extern const packed_weights_t kws_packed[];
extern const int kws_num_packed;

static uint8_t tensor_arena[KWS_ARENA_SIZE] __attribute__((aligned(16)));

int main(void) {
  board_init();
  app_config_t cfg = {
      .model = kws_model, .model_size = kws_model_len, .inputs = kws_inputs, .inputs_q = kws_inputs_q,
      .num_inputs = kws_num_inputs,
#ifdef KWS_OPTIMIZED
      .resolver = &kws_optimized_resolver, .packed = kws_packed, .num_packed = kws_num_packed,
#else
      .resolver = &kws_reference_resolver, .packed = 0, .num_packed = 0,
#endif
      .arena = tensor_arena, .arena_size = sizeof(tensor_arena), .write = uart_write, .ticks = timer_ticks,
  };
  semihosting_exit(app_run(&cfg));
  return 0;
}
