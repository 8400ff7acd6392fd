# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
"""
The package's structure, read from its source (the installed copy's): no
module imports another that imports it back, directly or around a circle,
and each subpackage imports only what its docstring says it may.
"""

from __future__ import absolute_import

import ast
import io
import os
import os.path
import sys

import pytest

import eustore_plugin

PACKAGE = os.path.dirname(os.path.abspath(eustore_plugin.__file__))

# Each subpackage, and what it may import besides itself and the package's
# shared small modules at its top ('top').  The order is the one-way
# direction: nothing imports what is listed after it.
ALLOWED = {
    'top': set(),
    'catalogs': {'top'},
    'bundle': {'top'},
    'cloud': {'top'},
    'images': {'top', 'bundle'},
    'store': {'top', 'catalogs'},
    'install': {'top', 'catalogs', 'store', 'images', 'cloud', 'bundle'},
    'publish': {'top', 'catalogs', 'store', 'images', 'cloud'},
    'commands': {'top', 'catalogs', 'store', 'images', 'cloud', 'bundle',
                 'install', 'publish'},
}


def modules():
    """{dotted name: path} of every module of the package."""
    found = {}
    for directory, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, os.path.dirname(PACKAGE))
            dotted = relative[:-3].replace(os.sep, '.')
            if dotted.endswith('.__init__'):
                dotted = dotted[:-len('.__init__')]
            found[dotted] = path
    return found


def imports(path, known):
    """The package's modules that the module at ``path`` imports, at its
    top or inside a function alike."""
    with io.open(path, encoding='utf-8') as source:
        tree = ast.parse(source.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.level == 0:
            for alias in node.names:
                candidate = node.module + '.' + alias.name
                found.add(candidate if candidate in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return set(name for name in found if name in known)


def graph():
    known = modules()
    return dict((name, imports(path, known) - {name})
                for name, path in known.items())


def package_of(module):
    parts = module.split('.')
    if len(parts) > 2 or (len(parts) == 2 and os.path.isdir(
            os.path.join(PACKAGE, parts[1]))):
        return parts[1]
    return 'top'


def circles(edges):
    """The strongly connected components of more than one module, and
    modules importing themselves (Tarjan's algorithm, without recursion
    depth worries: the package is small)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_around_a_circle():
    assert circles(graph()) == []


def test_a_circle_would_be_found():
    # The finder itself: a circle of three, and a chain that is none.
    assert circles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == \
        [['a', 'b', 'c']]


def test_each_subpackage_imports_only_what_it_may():
    wrong = []
    for module, targets in sorted(graph().items()):
        source = package_of(module)
        for target in sorted(targets):
            destination = package_of(target)
            if destination != source and \
                    destination not in ALLOWED[source]:
                wrong.append('{0} imports {1}'.format(module, target))
    assert wrong == []


def test_every_subpackage_says_what_it_is_for():
    for name in ALLOWED:
        if name == 'top':
            continue
        init = os.path.join(PACKAGE, name, '__init__.py')
        with io.open(init, encoding='utf-8') as source:
            docstring = ast.get_docstring(ast.parse(source.read()))
        assert docstring and len(docstring.split()) > 15, name


def test_the_top_holds_only_the_shared_small_modules():
    top = [name for name in modules() if package_of(name) == 'top']
    assert len(top) <= 12, sorted(top)


def test_commands_share_only_their_base():
    shared = 'eustore_plugin.commands.base'
    wrong = ['{0} imports {1}'.format(module, target)
             for module, targets in sorted(graph().items())
             if module.startswith('eustore_plugin.commands.')
             for target in sorted(targets)
             if target.startswith('eustore_plugin.commands.') and
             target != shared]
    assert wrong == []


@pytest.mark.skipif(sys.version_info < (3, 8),
                    reason='ast gives where a node ends from Python 3.8')
def test_classes_functions_and_commands_stay_readable_in_size():
    # What a reader takes in at once: a class of 300 lines, a function of
    # 80, a command's module (DESCRIPTION, ARGS, configure, main,
    # print_result; not their shared base) of 250.
    too_long = []
    for name, path in sorted(modules().items()):
        with io.open(path, encoding='utf-8') as source:
            text = source.read()
        if name.startswith('eustore_plugin.commands.') and \
                not name.endswith('.base') and len(text.splitlines()) >= 250:
            too_long.append('{0}: {1} lines'.format(
                name, len(text.splitlines())))
        for node in ast.walk(ast.parse(text)):
            most = 300 if isinstance(node, ast.ClassDef) else 80 \
                if isinstance(node, ast.FunctionDef) else None
            if most and node.end_lineno - node.lineno + 1 > most:
                too_long.append('{0}.{1}: {2} lines'.format(
                    name, node.name, node.end_lineno - node.lineno + 1))
    assert too_long == []
