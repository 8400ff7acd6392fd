# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The install's seams, each with a fake on the other side: the installer
with a recording target and cloud (the order of its calls, the journal it
writes, the undo after each failure), the built-in target's part uploads
with a cloud that fails, and the preflight list in both of its modes.

Fakes, not the real parts, on purpose and only here: these tests pin the
contract between the pieces (who is called when, with what), which the
end-to-end tests against moto (test_install.py, test_dryrun.py, ...)
cannot show, and they run in well under a second each.  What the fakes
stand for is tested for real there.
"""

from __future__ import absolute_import

import collections
import os
import threading

import pytest

from eustore_plugin.cloud.services import CloudError
from eustore_plugin.errors import EustoreError
from eustore_plugin.images.layout import registered_names
from eustore_plugin.install.builtin import PartUploads
from eustore_plugin.install.installer import install
from eustore_plugin.install.journal import Journal, PutObject
from eustore_plugin.install.plan import InstallError, InstallPlan
from eustore_plugin.install.preflight import (Check, InstallContext,
                                              Preflight, Problem)
from eustore_plugin.install.run import roll_back
from eustore_plugin.install.sources import UserTarball
from eustore_plugin.install.target import bundle_stored
from tests.support.demostore import write_tarball

# A single-kernel tarball's members, and the roles the installer gives them.
MEMBERS = {'disk.img': (1, 4096), 'vmlinuz-5.10': (2, 1024),
           'initrd.img-5.10': (3, 512)}


class Failure(EustoreError):
    """What a fake raises where a test tells it to fail."""


class RecordingCloud(object):
    """The cloud operations the installer and the undo use, recorded."""

    def __init__(self):
        self.calls = []
        self.registered = collections.OrderedDict()  # name: image id

    def create_tags(self, image_id, tags):
        self.calls.append(('create_tags', image_id, sorted(tags)))

    def images_named(self, name):
        return [{'imageId': image_id, 'imageLocation': None}
                for known, image_id in self.registered.items()
                if known == name]

    def deregister_image(self, image_id):
        self.calls.append(('deregister', image_id))

    def delete_object(self, bucket, key):
        self.calls.append(('delete_object', bucket, key))

    def delete_bucket(self, bucket):
        self.calls.append(('delete_bucket', bucket))


class RecordingTarget(object):
    """A target that keeps nothing: it records each call, journals a part
    per image as a real one would, and fails where told
    (``fail_at``: (call, role))."""

    needs_local_file = False

    def __init__(self, cloud, journal, fail_at=None):
        self.cloud = cloud
        self.journal = journal
        self.fail_at = fail_at
        self.calls = []
        self.quiesced = False

    def _call(self, call, role, *details):
        self.calls.append((call, role) + details)
        if self.fail_at == (call, role):
            raise Failure('{0} of the {1} failed'.format(call, role))

    def start(self, member, role, plan):
        data = member.stream.read()
        self.journal.add(PutObject(bucket=plan.bucket,
                                   key=plan.key(member.name)))
        self._call('start', role, member.name, len(data))
        return _Pending(self, role, plan)

    def accepts(self, plan, layout):
        self._call('accepts', layout.kind)

    def register(self, params):
        role = params['Name'].rpartition('-')[2]
        role = role if role in ('kernel', 'ramdisk') else 'machine'
        self._call('register', role, params.get('KernelId'),
                   params.get('RamdiskId'), params['ImageLocation'])
        image_id = {'kernel': 'eki', 'ramdisk': 'eri',
                    'machine': 'emi'}[role] + '-0000000' + str(
                        len(self.cloud.registered))
        self.cloud.registered[params['Name']] = image_id
        return image_id

    def quiesce(self):
        self.quiesced = True


class _Pending(object):
    def __init__(self, target, role, plan):
        self.target, self.role, self.plan = target, role, plan

    def finish(self, kernel_id=None, ramdisk_id=None):
        self.target._call('finish', self.role, kernel_id, ramdisk_id)
        return bundle_stored(self.plan.manifest_location(self.role))


@pytest.fixture
def tarball(tmpdir):
    path = str(tmpdir.join('single.tgz'))
    write_tarball(path, 'single', MEMBERS)
    return UserTarball(path)


@pytest.fixture
def journal(tmpdir):
    return Journal({'ec2': 'http://ec2', 's3': 'http://s3', 'account': '1'},
                   directory=str(tmpdir.join('journals')))


def plan(**extra):
    return InstallPlan(registered_names('demo'), 'x86_64', 'seam-bucket',
                       tags={'eustore:image': 'demo'}, **extra)


def test_the_installer_starts_while_reading_and_registers_kernel_first(
        tarball, journal):
    cloud = RecordingCloud()
    target = RecordingTarget(cloud, journal)
    reported = []
    ids = install(plan(), tarball, target, cloud, journal,
                  report=lambda role, image_id, stored: reported.append(role))
    starts = [call for call in target.calls if call[0] == 'start']
    # Each member started as the tarball went by, with all its bytes.
    assert sorted((role, name.split('/')[-1], size)
                  for _, role, name, size in starts) == [
        ('kernel', 'vmlinuz-5.10', 1024), ('machine', 'disk.img', 4096),
        ('ramdisk', 'initrd.img-5.10', 512)]
    # Then, after the whole tarball: its layout, and each image finished
    # and registered in turn, the machine image with the others' ids.
    rest = [call[:3] if call[0] != 'register' else call[:4]
            for call in target.calls if call[0] != 'start']
    assert rest == [
        ('accepts', 'single-kernel'),
        ('finish', 'kernel', None), ('register', 'kernel', None, None),
        ('finish', 'ramdisk', None), ('register', 'ramdisk', None, None),
        ('finish', 'machine', ids['kernel']),
        ('register', 'machine', ids['kernel'], ids['ramdisk'])]
    assert reported == ['kernel', 'ramdisk', 'machine']
    # Every image tagged with where it came from and its own manifest.
    tagged = [call for call in cloud.calls if call[0] == 'create_tags']
    assert [image_id for _, image_id, _ in tagged] == \
        [ids['kernel'], ids['ramdisk'], ids['machine']]
    assert all('eustore:manifest' in keys and 'eustore:image' in keys
               for _, _, keys in tagged)


def test_the_journal_holds_each_step_before_it_is_taken(tarball, journal):
    cloud = RecordingCloud()
    install(plan(), tarball, RecordingTarget(cloud, journal), cloud, journal)
    kinds = [action.KIND for action in journal.actions]
    assert kinds == ['put-object'] * 3 + ['registering', 'registered'] * 3
    # Each registration settled by its outcome: nothing of it is pending.
    assert [action.KIND for action in journal.pending()] == \
        ['registered'] * 3 + ['put-object'] * 3


@pytest.mark.parametrize('fail_at', [
    ('start', 'machine'), ('accepts', 'single-kernel'),
    ('finish', 'kernel'), ('register', 'ramdisk'), ('finish', 'machine'),
    ('register', 'machine')])
def test_a_failure_anywhere_is_undone_newest_first(tarball, journal,
                                                   fail_at):
    cloud = RecordingCloud()
    target = RecordingTarget(cloud, journal, fail_at=fail_at)
    with pytest.raises(Failure) as raised:
        install(plan(), tarball, target, cloud, journal)
    registered = list(cloud.registered.values())
    put = [(action.bucket, action.key) for action in journal.actions
           if action.KIND == 'put-object']
    with pytest.raises(InstallError) as failed:
        try:
            raise raised.value
        except Failure as err:
            roll_back(cloud, journal, err)
    assert str(failed.value) == '{0} of the {1} failed; what this run ' \
        'uploaded or registered was removed'.format(*fail_at)
    undone = [call for call in cloud.calls if call[0] != 'create_tags']
    # The images registered go first (newest first), then the objects.
    assert undone == \
        [('deregister', image_id) for image_id in reversed(registered)] + \
        [('delete_object', bucket, key) for bucket, key in reversed(put)]
    assert journal.path is None or not os.path.exists(journal.path)


def test_a_refused_registration_leaves_nothing_to_undo_of_it(tarball,
                                                             journal):
    cloud = RecordingCloud()

    class Refusing(RecordingTarget):
        def register(self, params):
            raise CloudError('EC2 refused the request', status_code=400)
    with pytest.raises(CloudError):
        install(plan(), tarball, Refusing(cloud, journal), cloud, journal)
    # The cloud said no: the registration is settled, and only the
    # objects are left to undo.
    assert [action.KIND for action in journal.pending()] == \
        ['put-object'] * 3


def test_given_kernel_and_ramdisk_are_not_stored(tarball, journal):
    cloud = RecordingCloud()
    target = RecordingTarget(cloud, journal)
    ids = install(plan(kernel_id='eki-given', ramdisk_id='eri-given'),
                  tarball, target, cloud, journal)
    assert [call[1] for call in target.calls if call[0] == 'start'] == \
        ['machine']
    assert ids['kernel'] == 'eki-given'
    (register,) = [call for call in target.calls if call[0] == 'register']
    assert register[2:4] == ('eki-given', 'eri-given')


# --------------------------------------------------------- part uploads

class Part(object):
    def __init__(self, number, path):
        self.filename = 'demo.part.{0}'.format(number)
        self.path = path
        self.size = 10


class Writer(object):
    """The BundleWriter side of PartUploads: parts released once sent."""

    def __init__(self):
        self.released = []

    def release(self, part):
        self.released.append(part.filename)


class FlakyCloud(object):
    """put_file fails as ``answers`` says, per key: a status to fail with,
    or None to take the part."""

    def __init__(self, answers):
        self.answers = dict((key, list(value))
                            for key, value in answers.items())
        self.attempts = []
        self.lock = threading.Lock()

    def put_file(self, bucket, key, path, acl='aws-exec-read'):
        with self.lock:
            self.attempts.append((key, acl))
            status = (self.answers.get(key) or [None]).pop(0) \
                if self.answers.get(key) else None
        if status is not None:
            raise CloudError('S3 answered {0}'.format(status),
                             status_code=status)


@pytest.fixture
def parts(tmpdir):
    path = str(tmpdir.join('part'))
    with open(path, 'wb') as out:
        out.write(b'x' * 10)
    return [Part(number, path) for number in range(4)]


def uploads(cloud, journal, writer, concurrency=2):
    return PartUploads(cloud, journal, writer, 'seam-bucket',
                       lambda name: 'prefix/' + name, concurrency,
                       acl='private')


def test_part_uploads_retry_a_server_error(parts, journal):
    cloud = FlakyCloud({'prefix/demo.part.1': [503, 500]})
    writer = Writer()
    sending = uploads(cloud, journal, writer)
    for part in parts:
        sending.submit(part)
    sending.wait()
    sending.close()
    assert sorted(key for key, _ in cloud.attempts).count(
        'prefix/demo.part.1') == 3
    assert set(acl for _, acl in cloud.attempts) == {'private'}
    assert sorted(writer.released) == sorted(part.filename for part in parts)
    # Every part journalled, by its key, before it was sent.
    assert sorted(action.key for action in journal.actions) == \
        ['prefix/demo.part.{0}'.format(number) for number in range(4)]


def test_part_uploads_stop_at_a_refusal(parts, journal):
    cloud = FlakyCloud({'prefix/demo.part.0': [403]})
    writer = Writer()
    sending = uploads(cloud, journal, writer, concurrency=1)
    with pytest.raises(CloudError) as refused:
        for part in parts:
            sending.submit(part)
        sending.wait()
    sending.close()
    assert refused.value.status_code == 403
    # Not retried, and nothing sent after it.
    assert [key for key, _ in cloud.attempts] == ['prefix/demo.part.0']


def test_part_uploads_give_up_after_their_attempts(parts, journal):
    cloud = FlakyCloud({'prefix/demo.part.0': [500, 500, 500, 500]})
    sending = uploads(cloud, journal, Writer(), concurrency=1)
    with pytest.raises(CloudError):
        sending.submit(parts[0])
        sending.wait()
    sending.close()
    assert len(cloud.attempts) == 3


# ------------------------------------------------------------ preflight

class Recorded(Check):
    """A check that records that it ran, and passes or fails as told."""

    def __init__(self, name, ran, outcome='ok', needs=(), finds=None,
                 **flags):
        self.name = name
        self.ran = ran
        self.outcome = outcome
        self.needs = needs
        self.finds = finds
        for flag, value in flags.items():
            setattr(self, flag, value)

    def run(self, context):
        self.ran.append(self.name)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        if self.finds:
            setattr(context, self.finds, 'found')
        return self.outcome


def context(dry_run):
    return InstallContext(None, None, None, None, None, None,
                          dry_run=dry_run)


def checks(ran):
    return Preflight([
        Recorded('cloud', ran, finds='cloud'),
        Recorded('probe', ran, dry_run_only=True),
        Recorded('catalog', ran, EustoreError('no catalog there')),
        Recorded('image', ran, needs=('catalog',)),
        Recorded('names', ran, [Problem('name one taken'),
                                Problem('name two taken')]),
        Recorded('abandoned', ran, install_only=True),
        Recorded('bucket', ran, 'writable')])


def test_an_install_stops_at_the_first_problem():
    ran = []
    with pytest.raises(EustoreError) as stopped:
        checks(ran).run(context(dry_run=False))
    assert str(stopped.value) == 'no catalog there'
    assert ran == ['cloud', 'catalog']


def test_a_dry_run_lists_every_problem_and_skips_what_cannot_run():
    ran = []
    report = checks(ran).dry_run(context(dry_run=True))
    # The image needs the catalog, which failed; the install-only step is
    # not a dry run's.
    assert ran == ['cloud', 'probe', 'catalog', 'names', 'bucket']
    assert [(check['check'], check['ok']) for check in report.checks] == [
        ('cloud', True), ('probe', True), ('catalog', False),
        ('names', False), ('names', False), ('bucket', True)]
    assert report.problems == ['no catalog there', 'name one taken',
                               'name two taken']


def test_an_install_raises_the_first_of_several_problems():
    ran = []
    preflight = Preflight([
        Recorded('names', ran, [Problem('name one taken'),
                                Problem('name two taken')]),
        Recorded('bucket', ran)])
    with pytest.raises(InstallError) as stopped:
        preflight.run(context(dry_run=False))
    assert str(stopped.value) == 'name one taken'
    assert ran == ['names']


def test_a_reuse_ends_the_checks_in_both_modes():
    for dry_run in (False, True):
        ran = []

        class Reuse(Check):
            name = 'reuse'

            def run(self, context):
                ran.append('reuse')
                context.reused = {'imageId': 'emi-1', 'name': 'demo'}
                return 'image demo is emi-1; -y reuses it'
        preflight = Preflight([Reuse(), Recorded('names', ran)])
        found = context(dry_run)
        report = preflight.dry_run(found) if dry_run else \
            preflight.run(found)
        assert ran == ['reuse']
        if dry_run:
            assert report.steps == ['Would reuse installed image emi-1 '
                                    '(demo), and do nothing else']
