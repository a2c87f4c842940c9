"""Writes the torchvision reference fixture for fairtune's augmentations (run once; the tests
never need PyTorch). Usage: python scripts/make_augmentation_reference.py [OUT_FILE]

The fixture holds a small test image and what torchvision's functional operations make of it:
brightness, contrast, saturation and hue at several factors, grayscale, Gaussian blur, and the
antialiased bilinear resize of a crop. Images are stored HWC (fairtune's layout), float32."""
import sys

import torch
import torchvision.transforms.functional as F
from safetensors.torch import save_file

out = sys.argv[1] if len(sys.argv) > 1 else "Tests/DataTests/Fixtures/augmentations.safetensors"
torch.manual_seed(0)
height, width = 12, 10
image = torch.rand(3, height, width)
# Edge cases for the HSV round trip: gray pixels (max == min), pure and saturated colours,
# and ties between the largest channels.
image[:, 0, 0] = torch.tensor([0.5, 0.5, 0.5])
image[:, 0, 1] = torch.tensor([1.0, 0.0, 0.0])
image[:, 0, 2] = torch.tensor([0.0, 1.0, 0.0])
image[:, 0, 3] = torch.tensor([0.0, 0.0, 1.0])
image[:, 0, 4] = torch.tensor([0.8, 0.8, 0.1])
image[:, 0, 5] = torch.tensor([0.2, 0.9, 0.9])
image[:, 0, 6] = torch.tensor([0.0, 0.0, 0.0])
image[:, 0, 7] = torch.tensor([1.0, 1.0, 1.0])


def hwc(t):
    return t.permute(1, 2, 0).contiguous()


tensors = {"input": hwc(image)}
for factor in [0.2, 1.0, 1.8]:
    tensors[f"brightness_{factor}"] = hwc(F.adjust_brightness(image, factor))
for factor in [0.2, 1.7]:
    tensors[f"contrast_{factor}"] = hwc(F.adjust_contrast(image, factor))
for factor in [0.0, 0.5, 1.8]:
    tensors[f"saturation_{factor}"] = hwc(F.adjust_saturation(image, factor))
for factor in [-0.2, 0.07, 0.2, 0.5]:
    tensors[f"hue_{factor}"] = hwc(F.adjust_hue(image, factor))
tensors["grayscale"] = hwc(F.rgb_to_grayscale(image, num_output_channels=3))
tensors["blur_5_1.3"] = hwc(F.gaussian_blur(image, kernel_size=[5, 5], sigma=[1.3, 1.3]))

# Resize of a crop of an 8-bit image, on the 0-255 scale: downscaling (antialiased) and upscaling.
pixels = torch.randint(0, 256, (3, 40, 36), dtype=torch.uint8)
tensors["resize_input"] = hwc(pixels.float())
crop = pixels[:, 3:3 + 31, 5:5 + 27].float()  # y 3, x 5, height 31, width 27
tensors["resize_down_13"] = hwc(F.resize(crop, [13, 13], interpolation=F.InterpolationMode.BILINEAR, antialias=True))
tensors["resize_up_45"] = hwc(F.resize(crop, [45, 45], interpolation=F.InterpolationMode.BILINEAR, antialias=True))
save_file(tensors, out, metadata={"torchvision": __import__("torchvision").__version__})
print(f"wrote {out}: {len(tensors)} tensors")
