# meta-raspberrypi machines: their board profile (GPIO chip label, pins, workers, MemoryMax).
PLAYLISTA_BOARD:raspberrypi3 = "rpi3"
PLAYLISTA_BOARD:raspberrypi3-64 = "rpi3"
PLAYLISTA_BOARD:raspberrypi4 = "rpi4"
PLAYLISTA_BOARD:raspberrypi4-64 = "rpi4"
PLAYLISTA_BOARD:raspberrypi5 = "rpi5"
