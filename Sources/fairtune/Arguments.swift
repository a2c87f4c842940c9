// The typed values that options take: each parses its names and, for a wrong one, the parser's
// message lists the names it accepts, in one place.
import ArgumentParser
import Experiment
import Training

extension Strategy: ExpressibleByArgument {}
extension PrecisionRequest: ExpressibleByArgument {}
extension BatchNormMode: ExpressibleByArgument {}
extension CollectiveSchedule: ExpressibleByArgument {}
extension GradientWire: ExpressibleByArgument {}
extension ObjectiveKind: ExpressibleByArgument {}
extension ConvolutionMethod: ExpressibleByArgument {}
extension OptimizerChoice: ExpressibleByArgument {}
extension ScheduleChoice: ExpressibleByArgument {}
extension HeadFit: ExpressibleByArgument {}
