// CelebA's 40 attribute names, and the label statistics behind the synthetic benchmark data.

public enum CelebA {
  /// The attributes in the order of list_attr_celeba.txt.
  public static let attributeNames = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
  ]

  /// The share of images with each attribute, from the first 20,000 rows of the label file.
  static let positiveRates = [
    0.11, 0.26, 0.51, 0.20, 0.02, 0.15, 0.24, 0.24, 0.24, 0.15, 0.05, 0.20, 0.14, 0.06, 0.05, 0.06, 0.06, 0.04,
    0.38, 0.45, 0.42, 0.48, 0.04, 0.12, 0.83, 0.28, 0.04, 0.28, 0.08, 0.06, 0.06, 0.48, 0.21, 0.32, 0.19, 0.05,
    0.47, 0.12, 0.07, 0.78,
  ]

  /// Each attribute's correlation with Male over the same rows: the strongest shared factor of
  /// the labels, used to make synthetic labels correlated the way CelebA's are.
  static let correlationWithMale = [
    0.42, -0.41, -0.40, 0.29, 0.18, -0.16, -0.18, 0.38, 0.11, -0.30, 0.03, -0.11, 0.24, 0.23, 0.20, 0.19, 0.30,
    0.19, -0.67, -0.25, 1.00, -0.10, 0.24, 0.03, -0.52, -0.10, -0.07, -0.22, 0.12, -0.21, 0.29, -0.14, 0.06,
    -0.33, -0.38, 0.14, -0.80, -0.27, 0.33, -0.29,
  ]
}
