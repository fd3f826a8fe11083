"""`imagespec import`: an existing xCAT site's osimages and flat files -> a new imagespec site.

Pure parts only (values in, values out); the files of the director are read
through a `DirectorFiles` (files.py) that the operation (ops/importer.py) gives.

stanzas.py   `lsdef -t osimage -z` and `tabdump litefile` text -> osimages and rows
files.py     the DirectorFiles protocol, a local copy of /install, an overlay
lists.py     xCAT list files read with #INCLUDE: expanded, each line keeping its file
dispatch.py  postinstall dispatcher scripts recognised and expanded
collect.py   one osimage -> its entries per profile key, each with the file it came from
factor.py    images' entries -> shared profiles, parents of common entries, leaves
write.py     the factored site as YAML text (ruamel), plus the copied files
meaning.py   what an osimage means to xCAT, for the fidelity proof (also used by adopt)
"""
