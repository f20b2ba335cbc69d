/* TIM2's counter. Under QEMU with -icount shift=0 it advances exactly once per executed instruction, so
 * differences are emulated instruction counts, not Cortex-M4 cycles (QEMU's DWT CYCCNT reads 0). */
#include "board.h"
#include "stm32f4_regs.h"

uint32_t timer_ticks(void) { return TIM2_CNT; }
