/* USART1 on PA9 (TX), polled: wait for TXE, write DR. QEMU shows it on stdout (-serial stdio). */
#include "board.h"
#include "stm32f4_regs.h"

void uart_write(const char *text) {
  for (; *text; ++text) {
    while (!(USART1_SR & (1u << 7))) { /* TXE: the data register is free */
    }
    USART1_DR = (uint8_t)*text;
  }
}
