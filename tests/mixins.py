"""
Bases for test mixins, so that the type checker knows the test case a
mixin is mixed into.

A mixin such as C{class CommandMixin(SynchronousTestCaseMixin)} is written
against a test case's methods (C{assertEqual}, C{addCleanup}, ...) but is
not one itself, or trial would collect and run it on its own. For mypy the
bases below are trial's test cases; when the tests run they are C{object},
so a mixin's method resolution order is what it would be without them.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twisted.trial.unittest import SynchronousTestCase, TestCase

    SynchronousTestCaseMixin = SynchronousTestCase
    TestCaseMixin = TestCase
else:
    SynchronousTestCaseMixin = object
    TestCaseMixin = object

__all__ = ["SynchronousTestCaseMixin", "TestCaseMixin"]
