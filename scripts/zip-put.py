#!/usr/bin/env python3
"""zip-put.py ZIP FILE NAME: puts FILE into ZIP as NAME (replacing an entry of that name), keeping the
other entries and their permissions. Used to ship policy.yaml next to bootstrap in the Lambda packages."""
import os
import sys
import zipfile

zip_path, file_path, name = sys.argv[1:4]
tmp = zip_path + ".tmp"
with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
    for info in src.infolist():
        if info.filename != name:
            dst.writestr(info, src.read(info.filename))
    dst.write(file_path, name)
os.replace(tmp, zip_path)
