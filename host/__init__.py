"""Host: the UART client that talks to a programmed board.

This part runs on the host computer: it opens the board's serial port, loads weights
and training data into the hardware, starts training steps and reads results back,
using the same data encodings as :mod:`lnsmadam.golden`.
"""
