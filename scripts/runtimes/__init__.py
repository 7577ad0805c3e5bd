"""Build addon-mount's built-in runtime catalog (``addon_mount/_runtimes/``).

Each built-in runtime is a model of a Cloudera AI runtime image, made from a
real root filesystem: a Debian root made by ``debootstrap --variant=minbase``
(standing in for Ubuntu's base image), into which the Dockerfiles' ``apt-get
install`` layers are really installed, in a chroot, with Debian's packages
standing in for Ubuntu's. Each layer is captured as what it changed. A
runtime is then assembled in memory, applying the steps of its Dockerfile in
their real order: the captured apt layers and the modelled steps (the cdsw
user, ``chmod``, ``chown``, the Python, R and conda trees). Order decides
ownership: whatever a step creates after the ``chown`` step stays root's.

Modules, in the order data flows: :mod:`.tree` (the mutable model),
:mod:`.layers` (captured apt layers and applying them), :mod:`.steps` (the
Dockerfile steps), :mod:`.products` (trees the model writes itself),
:mod:`.catalog` (the runtimes and their steps), :mod:`.chroot` (debootstrap and
the apt installs, root only), :mod:`.build` (snapshots out), :mod:`.cli`.
"""
