# The rescan button (board/profiles/rpi*.toml: GPIO 27 to ground) needs the pin's pull-up.
RPI_EXTRA_CONFIG:append:rpi = " \n# playlista rescan button\ngpio=27=ip,pu\n"
