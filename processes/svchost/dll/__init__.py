"""Service DLLs: ``%SystemRoot%\\System32\\<base>.dll`` is module ``processes.svchost.dll.<base>``
with ``ServiceMain(ctx, argv)`` and optionally ``SvchostPushServiceGlobals(globals)``."""
