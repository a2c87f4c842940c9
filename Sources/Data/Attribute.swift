// CelebA's 40 attributes as named cases, in the order of list_attr_celeba.txt.

/// The renderer reads single labels by name; `rawValue` is the column in CelebA's files.
enum Attribute: Int, CaseIterable {
  case fiveOClockShadow, archedEyebrows, attractive, bagsUnderEyes, bald, bangs, bigLips, bigNose, blackHair
  case blondHair, blurry, brownHair, bushyEyebrows, chubby, doubleChin, eyeglasses, goatee, grayHair
  case heavyMakeup, highCheekbones, male, mouthSlightlyOpen, mustache, narrowEyes, noBeard, ovalFace, paleSkin
  case pointyNose, recedingHairline, rosyCheeks, sideburns, smiling, straightHair, wavyHair, wearingEarrings
  case wearingHat, wearingLipstick, wearingNecklace, wearingNecktie, young
}

/// One image's 40 labels.
struct Labels {
  let values: UnsafePointer<Bool>
  subscript(_ attribute: Attribute) -> Bool { values[attribute.rawValue] }
  /// 1 when present, 0 when absent: the labels move traits by `effect * label`.
  func weight(_ attribute: Attribute) -> Float { values[attribute.rawValue] ? 1 : 0 }
}
