/* The only hardware-specific code: STM32F405/407 registers for USART1, TIM2 and the semihosting exit. */
#ifndef BOARD_H
#define BOARD_H
#include <stdint.h>

void board_init(void);                 /* FPU on, USART1 at 115200 8N1, TIM2 free-running */
void uart_write(const char *text);     /* USART1 TX, polled */
uint32_t timer_ticks(void);            /* TIM2->CNT: one tick per emulated instruction under -icount shift=0 */
void semihosting_exit(int code);       /* SYS_EXIT_EXTENDED: QEMU exits with `code`; idles in WFI otherwise */

#endif
