/* USART1 on PA9 (TX), polled. QEMU's netduinoplus2 and Renode's STM32_UART both need CR1 UE|TE set. */
#include "board.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define RCC_AHB1ENR REG(0x40023830u)
#define RCC_APB1ENR REG(0x40023840u)
#define RCC_APB2ENR REG(0x40023844u)
#define GPIOA_MODER REG(0x40020000u)
#define GPIOA_AFRH REG(0x40020024u)
#define USART1_SR REG(0x40011000u)
#define USART1_DR REG(0x40011004u)
#define USART1_BRR REG(0x40011008u)
#define USART1_CR1 REG(0x4001100Cu)
#define TIM2_CR1 REG(0x40000000u)
#define TIM2_EGR REG(0x40000014u)
#define TIM2_CNT REG(0x40000024u)
#define TIM2_PSC REG(0x40000028u)
#define TIM2_ARR REG(0x4000002Cu)

void board_init(void) {
  RCC_AHB1ENR |= 1u << 0;                                   /* GPIOA clock */
  RCC_APB2ENR |= 1u << 4;                                   /* USART1 clock */
  RCC_APB1ENR |= 1u << 0;                                   /* TIM2 clock */
  GPIOA_MODER = (GPIOA_MODER & ~(3u << 18)) | (2u << 18);   /* PA9 alternate function */
  GPIOA_AFRH = (GPIOA_AFRH & ~(0xFu << 4)) | (7u << 4);     /* AF7 = USART1_TX */
  USART1_BRR = 0x8Bu;                                       /* 16 MHz HSI / 115200 */
  USART1_CR1 = (1u << 13) | (1u << 3);                      /* UE | TE */
  TIM2_PSC = 0;                                             /* count every timer clock */
  TIM2_ARR = 0xFFFFFFFFu;                                   /* TIM2 is 32-bit: free-running */
  TIM2_EGR = 1;                                             /* load PSC/ARR */
  TIM2_CR1 = 1;                                             /* CEN */
}

void uart_write(const char *text) {
  for (; *text; ++text) {
    while (!(USART1_SR & (1u << 7))) { /* TXE */
    }
    USART1_DR = (uint8_t)*text;
  }
}

uint32_t timer_ticks(void) { return TIM2_CNT; }

/* ARM semihosting SYS_EXIT_EXTENDED (0x20): r1 points at {ADP_Stopped_ApplicationExit, code}. */
void semihosting_exit(int code) {
  volatile uint32_t block[2] = {0x20026u, (uint32_t)code};
  register uint32_t r0 __asm("r0") = 0x20;
  register volatile uint32_t *r1 __asm("r1") = block;
  __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  for (;;) __asm volatile("wfi"); /* Renode: no semihosting, the test has read the last line already */
}
