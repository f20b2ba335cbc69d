*** Comments ***
Runs the same ELF as the QEMU test on Renode, waits for the result lines on USART1 and reads the
instruction count. Run from firmware/ (see README.md):
    renode-test renode/kws.robot --variable ELF:$PWD/build/gen/kws_cnn_int8/inputs-0-3/kws_optimized-49152.elf
Renode has no semihosting exit: the firmware's last line is "done N", after which the test stops.

*** Settings ***
Suite Setup         Setup
Suite Teardown      Teardown
Test Teardown       Test Teardown
Resource            ${RENODEKEYWORDS}

*** Variables ***
${ELF}              ${CURDIR}/../build/gen/kws_cnn_int8/inputs-0-3/kws_optimized-49152.elf
${REPL}             ${CURDIR}/board.repl

*** Test Cases ***
KWS Firmware Reports Results On USART1
    Execute Command             mach create "stm32f4-kws"
    Execute Command             machine LoadPlatformDescription @${REPL}
    Execute Command             sysbus LoadELF @${ELF}
    Execute Command             cpu VectorTableOffset 0x08000000
    Execute Command             sysbus Tag <0x40023800, 0x400> "RCC"
    Execute Command             sysbus Tag <0x40020000, 0x400> "GPIOA"
    Create Terminal Tester      sysbus.usart1    timeout=300
    Start Emulation
    Wait For Line On Uart       kws model
    Wait For Line On Uart       arena
    Wait For Line On Uart       result 0 class
    Wait For Line On Uart       done
    ${instructions}=            Execute Command    sysbus.cpu ExecutedInstructions
    Log To Console              Renode executed instructions: ${instructions}
    Should Not Contain          ${instructions}    error
