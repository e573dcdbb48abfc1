SUMMARY = "playlista and what a music box around it needs"
DESCRIPTION = "The playlista service plus mDNS resolution for the box's own tools."
LICENSE = "MIT"

inherit packagegroup

RDEPENDS:${PN} = "playlista"
RRECOMMENDS:${PN} = "avahi-utils"
