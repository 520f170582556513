/* One ARMv8.2 dot-product instruction: a Raspberry Pi 5's Cortex-A76 has it, a Pi 4's Cortex-A72
   does not. Under qemu-aarch64 pinned to the Cortex-A72 it must die of SIGILL, which shows that
   the emulated CPU refuses what a Pi 4 would refuse. */
#include <stdio.h>

int main(void) {
  __asm__ volatile("sdot v0.4s, v1.16b, v2.16b" ::: "v0");
  puts("sdot ran");
  return 0;
}
