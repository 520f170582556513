// Evaluation: task metrics, labelled windows from the simulated plant, scoring a session.
export * from './metrics';
export * from './dataset';
export * from './evaluate';
