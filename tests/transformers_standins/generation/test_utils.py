"""Stand-in: the generation test mixin. MACRL cannot generate, so its tester must not inherit it; the common tests
only check that (`test_generation_tester_mixin_inheritance`)."""


class GenerationTesterMixin:
    pass
