# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
Installing one image tarball into a cloud: the steps between "here is a
tar.gz" and "here is an emi- id", and undoing them on failure.

The plugin's own bundler writes each manifest last, so the tarball is read
once, front to back (gzip allows nothing else), straight from the store if
need be: each member's role is judged from its name as it goes by, wanted
members are bundled as they are read (nothing is extracted to disk), parts
are uploaded while later ones are still being compressed, and when the end
is reached the download is verified and the whole layout checked before
anything is registered.  euca2ools writes each manifest as it bundles, so
with it the tarball is a file, read once for its member list and then for
the kernel and ramdisk, registered before the machine image is bundled.

Everything the run creates in the cloud is written into an
:class:`InstallJournal` as it happens; if anything fails, or the user presses
Ctrl-C, the journal deletes what was uploaded and deregisters what was
registered, newest first, so a rerun starts from a clean slate.
"""

from __future__ import absolute_import

import io
import os.path
import tarfile
import zlib

from eustore_plugin.bundle import BundleWriter
from eustore_plugin.download import verify
from eustore_plugin.layout import LayoutError, analyze, provisional_role


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

    def registering(self, name):
        """
        An image is about to be registered under ``name``.  No image had
        the name before the run (the command checks), so undoing it means
        deregistering whatever has it: even an image whose registration was
        cut off before its id came back.
        """
        self._undo.append(('name', name))

    @property
    def empty(self):
        return not self._undo

    def undo(self):
        """
        Remove everything recorded, newest first; returns what failed.  What
        is recorded is what the run was about to create, so something that
        is not there (a 404) is simply done.
        """
        failures = []
        while self._undo:
            kind, what = self._undo.pop()
            try:
                if kind == 'name':
                    for image in self.cloud.images_named(what):
                        self.cloud.deregister_image(image['imageId'])
                elif kind == 'object':
                    self.cloud.delete_object(*what)
                elif kind == 'objects':
                    for key in self.cloud.list_keys(*what):
                        self.cloud.delete_object(what[0], key)
                else:
                    self.cloud.delete_bucket(what)
            except Exception as err:  # keep undoing the rest
                if getattr(err, 'status_code', None) != 404:
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


class LocalTarball(object):
    """A tarball on disk: given by -t, or downloaded and kept with -d."""

    def __init__(self, path):
        self.path = path

    def open(self):
        return io.open(self.path, 'rb')

    def finish(self, fileobj):
        fileobj.close()


class StreamedTarball(object):
    """
    A tarball read from the store while it is installed (no copy on disk);
    it is checked against the catalog once read to its end, before anything
    is registered.  ``unverified(image)`` is told when nothing could be,
    ``done()`` when the whole tarball was read.
    """

    def __init__(self, stream, image, unverified, done=None):
        self.stream = stream
        self.image = image
        self.unverified = unverified
        self.done = done
        self.path = stream.url

    def open(self):
        return self.stream

    def finish(self, fileobj):
        # tar stops reading at its end-of-archive blocks: the checksums are
        # of every byte, padding included.
        while fileobj.read(1 << 20):
            pass
        fileobj.close()
        if self.done is not None:
            self.done()
        if not verify(self.stream.result(), self.image):
            self.unverified(self.image)


def read_layout(request, source):
    """A pass over a tarball on disk: which members to install."""
    with tarfile.open(source.path, 'r:gz') as tar:
        members = tar.getmembers()
    return analyze(members, hypervisor=request.hypervisor,
                   virtualization_type=request.virtualization_type)


def install(request, cloud, uploader, journal, report, source):
    """
    Bundle, upload and register the images of the tarball ``source``.
    ``report(role, id)`` is told each registered id.  Returns the machine
    image's id.  On any failure the journal is left for the caller to undo.
    """
    ids = {'kernel': request.kernel_id, 'ramdisk': request.ramdisk_id}
    uploads = _Uploads(request, cloud, uploader, journal, ids)

    def register_pending(layout):
        for role in ('kernel', 'ramdisk', 'machine'):
            if role not in uploads.pending:
                continue
            pending, extra = uploads.pending.pop(role), {}
            if role == 'machine':
                extra = dict(KernelId=ids['kernel'], RamdiskId=ids['ramdisk'],
                             VirtualizationType=layout.virtualization_type)
                location = pending.finish(kernel_id=ids['kernel'],
                                          ramdisk_id=ids['ramdisk'])
            else:
                location = pending.finish()
            ids[role] = register(uploader, journal, location,
                                 request.names[role], request, role, **extra)
            report(role, ids[role])

    if uploader.defers_manifests:
        # One pass, straight from the source: roles are judged member by
        # member, and the whole layout is checked once the list is known,
        # before anything is registered.
        fileobj = source.open()
        members = []
        try:
            with tarfile.open(fileobj=fileobj, mode='r|gz') as tar:
                for member in tar:
                    members.append(member)
                    uploads.bundle(tar, member, provisional_role(
                        member, request.hypervisor,
                        request.virtualization_type))
        except (tarfile.TarError, zlib.error, EOFError, IOError) as err:
            # A damaged download is better named by its checksum.
            source.finish(fileobj)
            raise LayoutError('{0} is not a readable tar.gz ({1})'.format(
                source.path, err))
        source.finish(fileobj)
        layout = analyze(members, hypervisor=request.hypervisor,
                         virtualization_type=request.virtualization_type)
        uploads.check_against(layout)
        register_pending(layout)
    else:
        # Kernel and ramdisk ids go into the machine image's manifest as it
        # is bundled: they are bundled and registered in a pass of their own.
        layout = read_layout(request, source)
        uploads.roles = layout.wanted()
        for wanted in (('kernel', 'ramdisk'), ('machine',)):
            uploads.bundle_pass(source, wanted)
            register_pending(layout)
    return ids['machine']


class _Uploads(object):
    """The bundles of one install: which member is which, and their state."""

    def __init__(self, request, cloud, uploader, journal, ids):
        self.request = request
        self.cloud = cloud
        self.uploader = uploader
        self.journal = journal
        self.ids = ids
        self.roles = None  # {member name: role} when known beforehand
        self.pending = {}
        self.bundled = {}  # member name -> role
        self._buckets = set()

    def bundle(self, tar, member, role):
        if role is None or (role != 'machine' and self.request.kernel_id):
            return  # not wanted, or the user's own kernel and ramdisk
        request = self.request
        bucket = request.bucket_for(role)
        if bucket not in self._buckets:
            if not self.cloud.bucket_exists(bucket):
                # Written down first: an interrupted PUT may still land.
                self.journal.created_bucket(bucket)
                self.cloud.create_bucket(bucket)
            self._buckets.add(bucket)
        if role in self.pending:
            raise LayoutError('the tarball holds several {0} files ({1}, '
                              '{2})'.format(role, self._name_of(role),
                                            member.name))
        self.bundled[member.name] = role
        machine = role == 'machine'
        self.pending[role] = self.uploader.upload(
            tar.extractfile(member), member.size, request.names[role], role,
            request.architecture, bucket,
            kernel_id=self.ids['kernel'] if machine else None,
            ramdisk_id=self.ids['ramdisk'] if machine else None,
            member=(request.tarball, member.name))

    def _name_of(self, role):
        return [name for name, what in self.bundled.items()
                if what == role][0]

    def bundle_pass(self, source, wanted):
        """A pass over a tarball on disk for the members of some roles."""
        with tarfile.open(source.path, 'r|gz') as tar:
            for member in tar:
                role = self.roles.get(member.name)
                if role in wanted:
                    self.bundle(tar, member, role)

    def check_against(self, layout):
        wanted = layout.wanted()
        if self.request.kernel_id:
            wanted = dict((name, role) for name, role in wanted.items()
                          if role == 'machine')
        if wanted != self.bundled:
            raise LayoutError(
                'the tarball\'s layout is not what its member names '
                'suggested while streaming it ({0}); install it from a '
                'local copy with -d'.format(', '.join(sorted(
                    set(wanted) ^ set(self.bundled)))))


def register(uploader, journal, location, name, request, role, **extra):
    params = dict(ImageLocation=location, Name=name,
                  Architecture=request.architecture)
    if request.description:
        params['Description'] = request.description if role == 'machine' \
            else '{0} ({1})'.format(request.description, role)
    params.update((key, val) for key, val in extra.items() if val)
    journal.registering(name)
    return uploader.register(**params)


def tarball_name(path_or_url):
    return os.path.basename(path_or_url.rstrip('/').split('?', 1)[0])
