/* Board bring-up: clocks for GPIOA, USART1 and TIM2, PA9 as USART1_TX, 115200 8N1, TIM2 free-running.
 * The chip runs from its 16 MHz HSI oscillator after reset; nothing here depends on a faster clock. */
#include "board.h"
#include "stm32f4_regs.h"

void board_init(void) {
  RCC_AHB1ENR |= 1u << 0;                                 /* GPIOA clock */
  RCC_APB2ENR |= 1u << 4;                                 /* USART1 clock */
  RCC_APB1ENR |= 1u << 0;                                 /* TIM2 clock */
  GPIOA_MODER = (GPIOA_MODER & ~(3u << 18)) | (2u << 18); /* PA9 alternate function */
  GPIOA_AFRH = (GPIOA_AFRH & ~(0xFu << 4)) | (7u << 4);   /* AF7 = USART1_TX */
  USART1_BRR = 0x8Bu;                                     /* 16 MHz HSI / 115200 */
  USART1_CR1 = (1u << 13) | (1u << 3);                    /* UE | TE: QEMU and Renode need both */
  TIM2_PSC = 0;                                           /* count every timer clock */
  TIM2_ARR = 0xFFFFFFFFu;                                 /* TIM2 is 32-bit: free-running */
  TIM2_EGR = 1;                                           /* load PSC/ARR now */
  TIM2_CR1 = 1;                                           /* CEN */
}
