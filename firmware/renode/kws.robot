*** Comments ***
Runs a firmware image on Renode (1.16.1; our own board.repl) and checks each result line's values: class
and raw output bytes, known from TFLM. tests/test_firmware.py::test_renode_robot builds the image and
passes the expected lines (regular expressions) as RESULT0..RESULT2; by hand, from firmware/:
    renode-test renode/kws.robot --variable ELF:/abs/kws_optimized-49152.elf \
        --variable RESULT0:'^result 0 class 2 conf [0-9]+ raw 80817f8080808080808080 instr [0-9]+$' ...
(the expected bytes come from TFLM: tools/emulator.py renode_expectations() prints them)
Renode has no semihosting exit (it logs "Unknown semihosting operation: 0x20" and the core sleeps in WFI):
the test ends on the UART line "done 3".

*** Settings ***
Suite Setup         Setup
Suite Teardown      Teardown
Test Teardown       Test Teardown
Resource            ${RENODEKEYWORDS}

*** Variables ***
${ELF}              ${CURDIR}/../build/kws.elf
${REPL}             ${CURDIR}/board.repl
${KERNELS}          optimized
${RESULT0}          ${EMPTY}
${RESULT1}          ${EMPTY}
${RESULT2}          ${EMPTY}

*** Test Cases ***
Firmware Results On USART1 Equal TFLM's
    Should Not Be Empty         ${RESULT2}    RESULT0..RESULT2 (the expected lines) are not set: see Comments
    Execute Command             mach create "stm32f4-kws"
    Execute Command             machine LoadPlatformDescription @${REPL}
    Execute Command             sysbus LoadELF @${ELF}
    Execute Command             cpu VectorTableOffset 0x08000000
    Execute Command             sysbus Tag <0x40023800 0x400> "RCC"
    Execute Command             sysbus Tag <0x40020000 0x400> "GPIOA"
    Create Terminal Tester      sysbus.usart1    timeout=300
    Start Emulation
    Wait For Line On Uart       ^kws model [0-9]+ bytes kernels ${KERNELS}$    treatAsRegex=true
    Wait For Line On Uart       ^arena [0-9]+ of [0-9]+ bytes$    treatAsRegex=true
    Wait For Line On Uart       ${RESULT0}    treatAsRegex=true
    Wait For Line On Uart       ${RESULT1}    treatAsRegex=true
    Wait For Line On Uart       ${RESULT2}    treatAsRegex=true
    Wait For Line On Uart       done 3
    ${instructions}=            Execute Command    sysbus.cpu ExecutedInstructions
    Log To Console              Renode executed instructions: ${instructions}
