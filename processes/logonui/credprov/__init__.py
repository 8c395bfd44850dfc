"""The credential providers LogonUI can load: one module per provider, named after its
CLSID (``clsid_<clsid in lower case, '-' as '_'>``), listed in the registry under
``HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Authentication\\Credential Providers``.

A provider module exports ``CLSID``, ``NAME`` and ``get_serialization(user, secret)``
(ICredentialProviderCredential::GetSerialization): the credentials as winlogon hands them
to LsaLogonUser (``user``, ``domain``, ``secret``, ``pin``).
"""
