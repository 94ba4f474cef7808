"""MkDocs hook: put the repository files that the docs link to into the site.

The pages link to files outside docs/ (bench/RESULTS.md, the plots beside it, seqtext/cells.py) by their
path in the repository, `../bench/RESULTS.md`, so that the links also work where the Markdown is read
as it is (GitHub, an editor). MkDocs knows only the files under docs/; this hook adds each file such a link
(or the nav) names to the site, at its path in the repository, a Markdown file as a page, and follows
the links of the pages it adds. A link to a file that does not exist is left alone, so that
`mkdocs build --strict` fails on it as on any broken link.
"""

import os
import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files, InclusionLevel

LINK = re.compile(r"\]\(\s*<?([^)\s>#]+)")  # the target of a Markdown link or image


def on_files(files: Files, config) -> Files:
    docs = Path(os.path.abspath(config.docs_dir))
    root = docs.parent
    wanted = [uri for uri in _nav_paths(config.nav) if uri.startswith("../")]
    pages = list(files.documentation_pages())
    while pages or wanted:
        if pages:
            page = pages.pop()
            wanted += _links(page.src_uri, Path(page.abs_src_path).read_text(encoding="utf-8"))
            continue
        uri = wanted.pop()
        path = Path(os.path.normpath(docs / uri))
        if not uri.startswith("../") or files.get_file_from_path(uri) or not path.is_file() or root not in path.parents:
            continue  # inside docs/, already added, or missing: MkDocs checks these itself
        in_repository = File(path.relative_to(root).as_posix(), str(root), config.site_dir, config.use_directory_urls)
        file = File(uri, str(docs), config.site_dir, config.use_directory_urls, dest_uri=in_repository.dest_uri,
                    inclusion=InclusionLevel.INCLUDED)  # else MkDocs' default exclusion of `.*` takes `../`
        files.append(file)
        if file.is_documentation_page():
            pages.append(file)
    return files


def _links(src_uri: str, markdown: str) -> list[str]:
    """The relative link targets in ``markdown``, as paths from docs/ (``../bench/RESULTS.md``)."""
    return [
        posixpath.normpath(posixpath.join(posixpath.dirname(src_uri), target))
        for target in LINK.findall(markdown)
        if "://" not in target and not target.startswith(("/", "mailto:"))
    ]


def _nav_paths(nav) -> list[str]:
    """Every file path the nav names."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [path for value in nav.values() for path in _nav_paths(value)]
    if isinstance(nav, list):
        return [path for item in nav for path in _nav_paths(item)]
    return []
