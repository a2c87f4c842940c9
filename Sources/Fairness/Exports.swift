// The CelebA file readers and their InputError are part of this module's interface.
@_exported import CelebAFormat
