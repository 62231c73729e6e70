"""The data layer: labelled audio datasets, the catalog of the field's datasets, downloads.

- :mod:`mgcl.data.manifest`: ``Row(path, label, fold, split)``, manifest CSVs.
- :mod:`mgcl.data.sources`: :class:`~mgcl.data.sources.Dataset`, the one dataset type;
  ``protocol_of`` (the one rule for keeping support and query apart), ``from_manifest``,
  ``load_names``.
- :mod:`mgcl.data.layouts`: the loaders of the datasets' official layouts (``load_esc50``...).
- :mod:`mgcl.data.catalog`: one entry per dataset (title, citation, loader, download
  details); ``canonical_name``, ``available_datasets``, ``load_dataset``, ``from_layout``.
- :mod:`mgcl.data.download`: HTTP download with resume and checksums, safe extraction.
- :mod:`mgcl.data.synthetic`: the synthetic sound-event generator.

Imports point one way: catalog -> layouts -> sources -> manifest.
"""
