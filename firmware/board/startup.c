/* Reset handler and vector table for the Cortex-M4: copy .data, zero .bss, enable the FPU, run main(). */
#include <stdint.h>
#include "errors.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void) {
  uint32_t *src = &_sidata, *dst = &_sdata;
  while (dst < &_edata) *dst++ = *src++;
  for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  SCB_CPACR |= 0xFu << 20; /* CP10/CP11 full access: the FPU (-mfloat-abi=hard) */
  __asm volatile("dsb\n isb");
  main();
  for (;;) __asm volatile("wfi");
}

/* Any fault: say so on the UART and stop, so a test sees a line instead of a hang. */
void uart_write(const char *text);
void semihosting_exit(int code);
void Fault_Handler(void) {
  uart_write("error HARD_FAULT\n");
  semihosting_exit(KWS_ERR_HARD_FAULT); /* its own exit status (runtime/errors.h) */
}

__attribute__((section(".isr_vector"), used)) static const void *const vectors[16] = {
    &_estack, Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
};
