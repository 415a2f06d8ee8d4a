"""``hivectl import``: a guest made by hand (a raw bhyve command line, or a script that runs one) as a config.

The pieces, each with one job:

- ``words``: where a word came from (argument N, line N of a script) and BSD ``getopt(3)`` as bhyve(8),
  bhyveload(8) and grub-bhyve read their options;
- ``tree``: a bhyve command line read into bhyve_config(5) keys, as bhyve itself builds its configuration
  tree (``usr.sbin/bhyve/config.c``, ``pci_emul.c`` and each device's option parser);
- ``loaders``: the bhyveload(8) and grub-bhyve command lines that prepare the VM before bhyve;
- ``convert``: the tree and the loader line as vm-bhyve guest keys (``hivectl/model/keys.py``), every
  device pinned where it was, anything without a key refused with its position;
- ``compare``: the documented normalisations, and the comparison of two trees;
- ``script``: finding those command lines in a shell script without running it.

``hivectl.ops.importer`` plans the import and checks the round trip: the config is planned as ``start``
would plan it, read back into a tree and compared, so a device that would come out differently is refused
before anything is written (docs/import.md).
"""
