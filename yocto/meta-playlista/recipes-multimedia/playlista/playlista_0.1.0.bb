SUMMARY = "Music library analysis and playlists served on the LAN"
DESCRIPTION = "playlista analyses a music library into SQLite (tempo, key, loudness, \
an embedding), makes playlists and serves them on the LAN: web page, JSON API, M3U8, \
Subsonic for phone apps, mDNS. Status LED and rescan button on GPIO."
HOMEPAGE = "https://github.com/playlista/playlista"
BUGTRACKER = "https://github.com/playlista/playlista/issues"
SECTION = "multimedia"
LICENSE = "MIT | Apache-2.0"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302 \
                    file://${COMMON_LICENSE_DIR}/Apache-2.0;md5=89aea4e17d99a7cacdbeed46a0096b10"

# The layer lives in the playlista repository: build the checkout it sits in. To build a
# fixed revision instead, see README.md (a bbappend with a git SRC_URI and SRCREV).
inherit externalsrc
EXTERNALSRC ?= "${@os.path.abspath(os.path.join(d.getVar('FILE_DIRNAME'), '..', '..', '..', '..'))}"
EXTERNALSRC_BUILD ?= "${WORKDIR}/build"

# Every crate pinned by Cargo.lock, with its checksum (scripts/crates-srcuri writes it).
require ${BPN}-crates.inc

inherit cargo systemd useradd

# libopus (the Opus decoder) is compiled in from its bundled source with cmake.
DEPENDS += "cmake-native"

# The box profile of Cargo.toml (fat LTO, one codegen unit) without the default `bench`
# feature (the benchmarks stay on the developer's machine); bitbake strips and splits the
# debug info itself, so cargo must not strip.
BUILD_MODE = "--profile box --no-default-features"
BUILD_DIR = "box"
export CARGO_PROFILE_BOX_STRIP = "false"

# Board profile (board/profiles/*.toml) for /etc/playlista/config.toml and the unit's
# MemoryMax; PLAYLISTA_LIBRARY (local.conf) sets the music folder so the service starts.
# With meta-raspberrypi, dynamic-layers/raspberrypi picks the Pi's profile by MACHINE.
PLAYLISTA_BOARD ??= "generic-arm-1gb"
PLAYLISTA_BOARD:x86-64 = "x86-nas"
PLAYLISTA_LIBRARY ??= ""

do_install:append() {
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${S}/board/playlista.service ${D}${systemd_system_unitdir}/
    install -d ${D}${nonarch_base_libdir}/udev/rules.d
    install -m 0644 ${S}/board/99-playlista-gpio.rules ${D}${nonarch_base_libdir}/udev/rules.d/
    install -d ${D}${datadir}/playlista/profiles
    install -m 0644 ${S}/board/profiles/*.toml ${D}${datadir}/playlista/profiles/
    install -m 0755 ${S}/board/install-profile ${D}${datadir}/playlista/
    PLAYLISTA_PROFILES=${S}/board/profiles sh ${S}/board/install-profile ${PLAYLISTA_BOARD} ${D}
    if [ -n "${PLAYLISTA_LIBRARY}" ]; then
        sed -i 's|^# library = .*|library = ["${PLAYLISTA_LIBRARY}"]|' ${D}${sysconfdir}/playlista/config.toml
    fi
    chgrp playlista ${D}${sysconfdir}/playlista/config.toml
}

USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "-f --system gpio"
USERADD_PARAM:${PN} = "--system --user-group --groups gpio --home-dir ${localstatedir}/lib/playlista \
                       --no-create-home --shell /sbin/nologin playlista"

SYSTEMD_SERVICE:${PN} = "playlista.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

CONFFILES:${PN} = "${sysconfdir}/playlista/config.toml"
FILES:${PN} += "${systemd_system_unitdir}/playlista.service \
                ${sysconfdir}/systemd/system/playlista.service.d \
                ${nonarch_base_libdir}/udev/rules.d"
# ffmpeg, when installed, decodes what no built-in decoder reads (WMA, WavPack, APE, Musepack).
RRECOMMENDS:${PN} += "ffmpeg"
