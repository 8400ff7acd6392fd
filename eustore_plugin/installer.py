# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Installing one image tarball into a cloud: the steps between "here is a
verified tar.gz" and "here is an emi- id", and undoing them on failure.

The tarball is read twice, front to back (gzip allows nothing else): once for
its member list, which decides the layout, and once to stream the wanted
members straight into bundles; nothing is extracted to disk.  Parts are
uploaded while later ones are still being compressed, and each bundle's
manifest is written last, so the machine image's can name the kernel and
ramdisk registered just before it.

Everything the run creates in the cloud is written into an
:class:`InstallJournal` as it happens; if anything fails, or the user presses
Ctrl-C, the journal deletes what was uploaded and deregisters what was
registered, newest first, so a rerun starts from a clean slate.
"""

from __future__ import absolute_import

import os.path
import tarfile

from eustore_plugin.bundle import BundleWriter
from eustore_plugin.layout import analyze


class InstallJournal(object):
    """What this run created in the cloud, to undo on failure."""

    def __init__(self, cloud):
        self.cloud = cloud
        self._undo = []

    def created_bucket(self, bucket):
        self._undo.append(('bucket', bucket))

    def uploaded(self, bucket, key):
        self._undo.append(('object', (bucket, key)))

    def uploaded_prefix(self, bucket, prefix):
        """Objects whose names start with ``prefix`` are this run's."""
        self._undo.append(('objects', (bucket, prefix)))

    def registered(self, image_id):
        self._undo.append(('image', image_id))

    @property
    def empty(self):
        return not self._undo

    def undo(self):
        """Remove everything recorded, newest first; returns what failed."""
        failures = []
        while self._undo:
            kind, what = self._undo.pop()
            try:
                if kind == 'image':
                    self.cloud.deregister_image(what)
                elif kind == 'object':
                    self.cloud.delete_object(*what)
                elif kind == 'objects':
                    for key in self.cloud.list_keys(*what):
                        self.cloud.delete_object(what[0], key)
                else:
                    self.cloud.delete_bucket(what)
            except Exception as err:  # keep undoing the rest
                failures.append('{0} {1}: {2}'.format(kind, what, err))
        return failures


class BundleCredentials(object):
    """What bundling needs besides the image: certificates, key, account."""

    def __init__(self, certificate, private_key, cloud_certificate,
                 account_id):
        self.certificate = certificate
        self.private_key = private_key
        self.cloud_certificate = cloud_certificate
        self.account_id = account_id


class BuiltinBundleUploader(object):
    """
    Bundles with the plugin's own BundleWriter and uploads each part as soon
    as it is finished (at most ``max_pending_parts`` wait on disk).  Its
    manifests are written after all parts are up, so they can name a kernel
    and ramdisk registered meanwhile.
    """

    defers_manifests = True

    def __init__(self, cloud, credentials, journal, workdir=None,
                 part_size=10485760, max_pending_parts=2, progress=None):
        self.cloud = cloud
        self.credentials = credentials
        self.journal = journal
        self.workdir = workdir
        self.part_size = part_size
        self.max_pending_parts = max_pending_parts
        self.progress = progress

    def upload(self, fileobj, size, prefix, image_type, architecture,
               bucket, kernel_id=None, ramdisk_id=None, member=None):
        """
        Bundle and upload an image read from ``fileobj`` (``member``, the
        tarball and member name it comes from, is not needed here); returns
        a :class:`PendingManifest`.
        """
        creds = self.credentials
        writer = BundleWriter(
            prefix, image_type, architecture, creds.account_id,
            creds.certificate, creds.private_key, creds.cloud_certificate,
            part_size=self.part_size, workdir=self.workdir,
            max_pending_parts=self.max_pending_parts)
        source = _CountingReader(fileobj)
        bar = self.progress('bundling {0}'.format(image_type), size) \
            if self.progress else None
        for part in writer.bundle(source, size):
            # Recorded first: an upload cut half-way may still have landed.
            self.journal.uploaded(bucket, part.filename)
            self.cloud.put_file(bucket, part.filename, part.path)
            if bar is not None:
                bar.update(source.count)
        if bar is not None:
            bar.finish()
        return PendingManifest(self, writer, bucket)

    def register(self, **params):
        return self.cloud.register_image(**params)


class _CountingReader(object):
    """A file's read(), counting the bytes it has given out."""

    def __init__(self, fileobj):
        self._fileobj = fileobj
        self.count = 0

    def read(self, size=-1):
        data = self._fileobj.read(size)
        self.count += len(data)
        return data


class PendingManifest(object):
    """A bundle whose parts are uploaded and whose manifest is not yet."""

    def __init__(self, uploader, writer, bucket):
        self._uploader = uploader
        self._writer = writer
        self.bucket = bucket

    def finish(self, kernel_id=None, ramdisk_id=None):
        """Write, upload and return the manifest's location (bucket/key)."""
        manifest = self._writer.manifest(kernel_id=kernel_id,
                                         ramdisk_id=ramdisk_id)
        key = self._writer.manifest_filename
        self._uploader.journal.uploaded(self.bucket, key)
        self._uploader.cloud.put_object(self.bucket, key, manifest)
        return '{0}/{1}'.format(self.bucket, key)


class InstallRequest(object):
    """Everything one install needs to know, decided before any I/O."""

    def __init__(self, tarball, names, architecture, bucket,
                 description=None, hypervisor=None, virtualization_type=None,
                 kernel_id=None, ramdisk_id=None, separate_buckets=False):
        self.tarball = tarball
        self.names = names
        self.architecture = architecture
        self.bucket = bucket
        self.description = description
        self.hypervisor = hypervisor
        self.virtualization_type = virtualization_type
        self.kernel_id = kernel_id
        self.ramdisk_id = ramdisk_id
        self.separate_buckets = separate_buckets

    def bucket_for(self, role):
        if self.separate_buckets and role != 'machine':
            return '{0}-{1}'.format(self.bucket, role)
        return self.bucket


def read_layout(request):
    """First pass over the tarball: which members to install."""
    with tarfile.open(request.tarball, 'r:gz') as tar:
        members = tar.getmembers()
    return analyze(members, hypervisor=request.hypervisor,
                   virtualization_type=request.virtualization_type)


def install(request, cloud, uploader, journal, report):
    """
    Bundle, upload and register the tarball's images.  ``report(role, id)``
    is told each registered id.  Returns the machine image's id.  On any
    failure the journal is left for the caller to undo.
    """
    layout = read_layout(request)
    roles = layout.wanted()
    if request.kernel_id:
        # The user's own, already registered kernel and ramdisk are used.
        roles = dict((name, role) for name, role in roles.items()
                     if role == 'machine')
    for role in set(roles.values()):
        if cloud.ensure_bucket(request.bucket_for(role)):
            journal.created_bucket(request.bucket_for(role))

    ids = {'kernel': request.kernel_id, 'ramdisk': request.ramdisk_id}
    if uploader.defers_manifests:
        passes = [set(roles.values())]
    else:
        # Kernel and ramdisk ids go into the machine image's manifest as it
        # is bundled: register them in a pass of their own first.
        passes = [set(roles.values()) - set(['machine']), set(['machine'])]
    machine_id = None
    for wanted in passes:
        pending = bundle_members(request, roles, wanted, uploader, ids)
        for role in ('kernel', 'ramdisk'):
            if role in pending:
                ids[role] = register(uploader, journal,
                                     pending[role].finish(),
                                     request.names[role], request, role)
                report(role, ids[role])
        if 'machine' in pending:
            location = pending['machine'].finish(kernel_id=ids['kernel'],
                                                 ramdisk_id=ids['ramdisk'])
            machine_id = register(
                uploader, journal, location, request.names['machine'],
                request, 'machine', KernelId=ids['kernel'],
                RamdiskId=ids['ramdisk'],
                VirtualizationType=layout.virtualization_type)
            report('machine', machine_id)
    return machine_id


def bundle_members(request, roles, wanted, uploader, ids):
    """One pass over the tarball, bundling the members of ``wanted`` roles."""
    pending = {}
    if not wanted:
        return pending
    with tarfile.open(request.tarball, 'r|gz') as tar:
        for member in tar:
            role = roles.get(member.name)
            if role not in wanted:
                continue
            pending[role] = uploader.upload(
                tar.extractfile(member), member.size, request.names[role],
                role, request.architecture, request.bucket_for(role),
                kernel_id=ids['kernel'] if role == 'machine' else None,
                ramdisk_id=ids['ramdisk'] if role == 'machine' else None,
                member=(request.tarball, member.name))
    return pending


def register(uploader, journal, location, name, request, role, **extra):
    params = dict(ImageLocation=location, Name=name,
                  Architecture=request.architecture)
    if request.description:
        params['Description'] = request.description if role == 'machine' \
            else '{0} ({1})'.format(request.description, role)
    params.update((key, val) for key, val in extra.items() if val)
    image_id = uploader.register(**params)
    journal.registered(image_id)
    return image_id


def tarball_name(path_or_url):
    return os.path.basename(path_or_url.rstrip('/').split('?', 1)[0])
