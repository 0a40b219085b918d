"""Static files storage: whitenoise's compressed, hashed files, with ES module imports rewritten.

The browser code is ES modules that import each other by relative path (``import ... from
"./markdown.js"``). Django's manifest storage rewrites those specifiers to the hashed names too
when ``support_js_module_import_aggregation`` is on, so a page and every module it imports are
served under immutable, versioned URLs: a deploy never mixes old and new modules.
"""
from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
