"""The image builder: build/ + Debian packages (+ a KubeSolo binary) -> an image
directory (see harness.artefact). Nothing above the artefact imports this package
but the pytest plugin and the command line, which ask for images."""
